package sessionaudit

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
)

// Annotation keys of the session fields.
const (
	prefix                = "execproxy.dev/"
	AnnotationRecord      = prefix + "record" // start, end, refused or ephemeral-container
	AnnotationSessionID   = prefix + "session-id"
	AnnotationAuditID     = prefix + "apiserver-audit-id"
	AnnotationKind        = prefix + "kind"
	AnnotationContainer   = prefix + "container"
	AnnotationNode        = prefix + "node"
	AnnotationKubelet     = prefix + "kubelet-address"
	AnnotationCommand     = prefix + "command" // JSON array
	AnnotationTTY         = prefix + "tty"
	AnnotationStdin       = prefix + "stdin"
	AnnotationPorts       = prefix + "ports"
	AnnotationProtocol    = prefix + "protocol"
	AnnotationStart       = prefix + "start"
	AnnotationEnd         = prefix + "end"
	AnnotationDuration    = prefix + "duration"
	AnnotationExitCode    = prefix + "exit-code"
	AnnotationBytesIn     = prefix + "bytes-in"
	AnnotationBytesOut    = prefix + "bytes-out"
	AnnotationReason      = prefix + "reason"
	AnnotationBytesPrefix = prefix + "bytes-" // + stdin, stdout, stderr or data
	AnnotationResizes     = prefix + "resizes"
	AnnotationRecording   = prefix + "recording"
	// AnnotationRecordingDropped counts events left out of the recording rather than slow the session.
	AnnotationRecordingDropped = prefix + "recording-dropped"
	AnnotationRecordingError   = prefix + "recording-error"
	// AnnotationJustification is the reason the user gave (AnnotationReason is why a session ended).
	AnnotationJustification = prefix + "justification"
	AnnotationPolicyRule    = prefix + "policy-rule"
	// AnnotationModerators are who moderated a moderated session: as it started in its start record,
	// at any time in its end record (JSON array); in a
	// watch or join record, AnnotationModerator says the watcher counted as the session's moderator.
	AnnotationModerators = prefix + "moderators"
	AnnotationModerator  = prefix + "moderator"
	// AnnotationAdmissionWarnings is a JSON array of the admission plugins' warnings; the plugins'
	// own annotations (validation.policy.admission.k8s.io/..., validating.webhook.admission.k8s.io/...)
	// are kept under their keys, as in kube-apiserver's audit.
	AnnotationAdmissionWarnings = prefix + "admission-warnings"
	AnnotationAdmissionDeniedBy = prefix + "admission-denied-by"
	// AnnotationImage is an ephemeral container's image.
	AnnotationImage = prefix + "image"
	recordStart     = "start"
	recordEnd       = "end"
	recordRefused   = "refused"
	// recordEphemeralContainer is the one record of an ephemeral container the kube route added for
	// a user (kubectl debug); its Kind is "ephemeralcontainers".
	recordEphemeralContainer = "ephemeral-container"
	timeFormat               = time.RFC3339Nano
	subresourceAPIVersion    = "v1"
)

// kubectl's Kubectl-Command and Kubectl-Session headers (KEP-859), as the client sent them.
const (
	AnnotationKubectlCommand = prefix + "kubectl-command"
	AnnotationKubectlSession = prefix + "kubectl-session"
)

// event builds the audit Event of one record kind. The session id is the audit ID, so the start and
// end of a session share it; kube-apiserver's own audit ID is kept in an annotation.
func event(kind string, r Record) *auditinternal.Event {
	stage, at := auditinternal.StageResponseComplete, r.End
	if kind == recordStart {
		stage, at = auditinternal.StageResponseStarted, r.Start
	}
	ev := &auditinternal.Event{
		Level:                    auditinternal.LevelMetadata,
		AuditID:                  types.UID(r.SessionID),
		Stage:                    stage,
		RequestURI:               r.RequestURI,
		Verb:                     "create",
		User:                     r.User,
		SourceIPs:                r.SourceIPs,
		UserAgent:                r.UserAgent,
		RequestReceivedTimestamp: metav1.NewMicroTime(r.Start),
		StageTimestamp:           metav1.NewMicroTime(at),
		ObjectRef: &auditinternal.ObjectReference{Resource: "pods", Namespace: r.Namespace, Name: r.Pod,
			UID: r.PodUID, APIVersion: subresourceAPIVersion, Subresource: r.Kind},
		Annotations: annotations(kind, r),
	}
	if r.Impersonator != nil { // as kube-apiserver's audit has it: who authenticated, and as whom
		ev.User = *r.Impersonator
		if r.User.Username != "" { // none: the impersonation was refused
			user := r.User
			ev.ImpersonatedUser = &user
		}
	}
	switch kind {
	case recordRefused:
		ev.ResponseStatus = &metav1.Status{Status: metav1.StatusFailure, Code: r.Code, Message: r.Message}
	case recordEphemeralContainer:
		ev.Verb = "patch"
		if r.Code == 0 { // asked for, before kube-apiserver answers
			ev.Stage = auditinternal.StageRequestReceived
			break
		}
		ev.ResponseStatus = &metav1.Status{Code: r.Code, Message: r.Message}
	default:
		ev.ResponseStatus = &metav1.Status{Code: 101}
	}
	return ev
}

func annotations(kind string, r Record) map[string]string {
	a := map[string]string{
		AnnotationRecord: kind, AnnotationSessionID: r.SessionID, AnnotationKind: r.Kind,
		AnnotationStart: r.Start.UTC().Format(timeFormat),
	}
	set := func(k, v string) {
		if v != "" {
			a[k] = v
		}
	}
	set(AnnotationAuditID, r.APIServerAuditID)
	set(AnnotationKubectlCommand, r.KubectlCommand)
	set(AnnotationKubectlSession, r.KubectlSession)
	set(AnnotationContainer, r.Container)
	set(AnnotationNode, r.Node)
	set(AnnotationKubelet, r.KubeletAddress)
	set(AnnotationProtocol, r.Protocol)
	set(AnnotationJustification, r.Justification)
	set(AnnotationPolicyRule, r.PolicyRule)
	set(AnnotationAdmissionDeniedBy, r.AdmissionDeniedBy)
	set(AnnotationImage, r.Image)
	for k, v := range r.Admission {
		if !strings.HasPrefix(k, prefix) { // the plugins' keys cannot overwrite the record's own
			a[k] = v
		}
	}
	if r.AdmissionWarnings != nil {
		w, _ := json.Marshal(r.AdmissionWarnings)
		a[AnnotationAdmissionWarnings] = string(w)
	}
	if r.Moderators != nil {
		m, _ := json.Marshal(r.Moderators)
		a[AnnotationModerators] = string(m)
	}
	if r.Command != nil {
		cmd, _ := json.Marshal(r.Command)
		a[AnnotationCommand] = string(cmd)
	}
	if r.Ports != nil {
		ports, _ := json.Marshal(r.Ports)
		a[AnnotationPorts] = string(ports)
	}
	if r.Kind != "portforward" {
		a[AnnotationTTY], a[AnnotationStdin] = strconv.FormatBool(r.TTY), strconv.FormatBool(r.Stdin)
	}
	if kind == recordStart {
		return a
	}
	a[AnnotationEnd] = r.End.UTC().Format(timeFormat)
	a[AnnotationDuration] = r.End.Sub(r.Start).String()
	a[AnnotationReason] = r.Reason
	if kind == recordEnd {
		a[AnnotationExitCode] = r.ExitCode
		a[AnnotationBytesIn] = fmt.Sprint(r.BytesIn)
		a[AnnotationBytesOut] = fmt.Sprint(r.BytesOut)
		for stream, n := range r.StreamBytes {
			a[AnnotationBytesPrefix+stream] = fmt.Sprint(n)
		}
		if r.TTY {
			a[AnnotationResizes] = fmt.Sprint(r.Resizes)
		}
		if r.Recording != "" {
			a[AnnotationRecording], a[AnnotationRecordingDropped] = r.Recording, fmt.Sprint(r.RecordingDropped)
			set(AnnotationRecordingError, r.RecordingError)
		}
	}
	return a
}
