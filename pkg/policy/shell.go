package policy

import (
	"path"
	"slices"
	"strings"
	"unicode"
)

// shells are the argv[0]s whose `-c` script ShellScriptsMatch matches, by base name.
var shells = []string{"sh", "ash", "bash", "dash", "ksh", "mksh", "zsh"}

// shellScript is the script of `SHELL -c SCRIPT [ARG0 ARGS...]`.
func shellScript(argv []string) (string, bool) {
	if len(argv) < 3 || argv[1] != "-c" || !slices.Contains(shells, path.Base(argv[0])) {
		return "", false
	}
	return argv[2], true
}

// plainWords splits a script of plain words, which a shell splits at blanks (spaces and tabs)
// and runs as one command. Anything else is a script the policy cannot read as the shell would:
//   - a character any of the shells gives a meaning to beyond separating words, a control
//     character (no argv holds a NUL) or a non-ASCII one (a locale may make it a blank);
//   - a script that starts with '-' or '+': the shells take it for an option and run the next
//     argument as the script (sh -c -x 'rm -rf /');
//   - a first word that assigns a variable, or any word that starts with '=' (zsh replaces
//     =NAME with the path of the command NAME).
//
// A first word that the shell runs itself is for the caller to judge (shellOwn).
func plainWords(script string) ([]string, bool) {
	if strings.ContainsFunc(script, func(r rune) bool {
		return strings.ContainsRune("\"'`$\\;&|<>(){}[]*?~#!^\n\r", r) || (unicode.IsControl(r) && r != '\t') || r > unicode.MaxASCII
	}) || strings.HasPrefix(script, "-") || strings.HasPrefix(script, "+") {
		return nil, false
	}
	words := strings.FieldsFunc(script, func(r rune) bool { return r == ' ' || r == '\t' })
	if (len(words) > 0 && strings.Contains(words[0], "=")) || slices.ContainsFunc(words, func(w string) bool { return strings.HasPrefix(w, "=") }) {
		return nil, false
	}
	return words, true
}

// shellOwn says whether a shell runs a script's first word itself rather than as the program
// of that name: a reserved word, a builtin, or an alias the shell defines. What the shell then
// does with the other words is its own: run them as a command (eval, exec, command, builtin,
// time, coproc, nohup in ksh), read a file as a script (., source), run a command later (trap),
// load code (enable -f), run a callback (mapfile -C, compgen -C), write a file (history -w). So
// such a script runs only when an allow entry names the word, and a deny list cannot hold it.
// The words are the union over the shells ShellScriptsMatch reads: sh may be any of them. A
// word starting with % is a job (bash runs `%1` as `fg %1`).
func shellOwn(word string) bool {
	_, ok := shellWords[word]
	return ok || strings.HasPrefix(word, "%")
}

var shellWords = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, list := range []string{
		// POSIX reserved words, and bash's, ksh's and zsh's (including zsh's precommand modifiers).
		"! { } [[ ]] case do done elif else esac fi for if in then until while function select time coproc",
		"foreach end repeat nocorrect noglob - builtin command exec",
		// The POSIX special and regular builtins, with dash's and busybox ash's.
		". : [ alias bg break cd chdir continue echo eval exit export false fc fg getopts hash help history",
		"jobs kill let local printf pwd read readonly return set shift source test times trap true type",
		"ulimit umask unalias unset wait",
		// bash's.
		"bind caller compgen complete compopt declare dirs disown enable logout mapfile popd pushd readarray",
		"shopt suspend typeset",
		// ksh93's and mksh's, with the aliases they define.
		"autoload cat compound float functions getconf global hist integer login mknod nameref newgrp nohup",
		"print r realpath redirect rename sleep stop whence",
		// zsh's.
		"bindkey bye cap clone comparguments compcall compctl compdescribe compfiles compgroups compquote",
		"comptags comptry compvalues compadd compset disable echotc echoti emulate getcap getln limit private",
		"pushln rehash sched setcap setopt ttyctl unfunction unhash unlimit unsetopt vared where which",
		"zcompile zformat zle zmodload zparseopts zprof zpty zregexparse zsocket zstyle ztcp zftp",
	} {
		for _, w := range strings.Fields(list) {
			m[w] = struct{}{}
		}
	}
	return m
}()
