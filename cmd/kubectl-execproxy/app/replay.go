package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

func newReplayCommand(g *globalOptions) *cobra.Command {
	var speed float64
	var dir, namespace string
	cmd := &cobra.Command{
		Use:   "replay FILE|ID",
		Short: "Play a session recording (asciicast v2) in the terminal, at its own pace",
		Long: "Play a session recording: a file, or a session ID, read through kube-apiserver from whichever exec-proxy " +
			"replica recorded it (get on execsessions/recording), or from --dir.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if speed <= 0 {
				return fmt.Errorf("--speed must be positive")
			}
			in, err := openRecording(cmd.Context(), g, args[0], dir, namespace)
			if err != nil {
				return err
			}
			defer in.Close()
			return replay(cmd.Context(), in, cmd.OutOrStdout(), speed)
		},
	}
	cmd.Flags().Float64Var(&speed, "speed", 1, "playback speed (2: twice as fast)")
	cmd.Flags().StringVar(&dir, "dir", "", "read the recording of an ID from this directory (<id>.cast) instead of the API")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "the session's namespace (default: the context's)")
	return cmd
}

// openRecording opens a file, a recording in dir, or the recording of session id through the API.
func openRecording(ctx context.Context, g *globalOptions, arg, dir, namespace string) (io.ReadCloser, error) {
	if _, err := os.Stat(arg); err == nil || dir != "" {
		path := arg
		if err != nil {
			path = filepath.Join(dir, arg+".cast")
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("recording: %w", err)
		}
		return f, nil
	}
	client, current, err := g.sessionsClient()
	if err != nil {
		return nil, err
	}
	if namespace == "" {
		namespace = current
	}
	in, err := client.Get().Namespace(namespace).Resource("execsessions").Name(arg).SubResource("recording").Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("recording of session %s/%s: %w", namespace, arg, err)
	}
	return in, nil
}

// replay writes the output events ("o") of an asciicast v2 stream to out, waiting between them as
// the session did, divided by speed.
func replay(ctx context.Context, in io.Reader, out io.Writer, speed float64) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	if !sc.Scan() {
		return fmt.Errorf("recording: no header")
	}
	var header struct{ Version int }
	if err := json.Unmarshal(sc.Bytes(), &header); err != nil || header.Version != 2 {
		return fmt.Errorf("recording: not asciicast v2 (%v)", err)
	}
	start, prev := time.Now(), 0.0
	for sc.Scan() {
		var ev [3]interface{}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("recording: event %q: %w", sc.Text(), err)
		}
		at, _ := ev[0].(float64)
		kind, _ := ev[1].(string)
		data, _ := ev[2].(string)
		if at < prev {
			at = prev
		}
		prev = at
		if wait := time.Until(start.Add(time.Duration(at / speed * float64(time.Second)))); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		if kind == "o" {
			if _, err := io.WriteString(out, data); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}
