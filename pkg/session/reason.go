package session

// End reasons recorded for a session.
const (
	ReasonExited        = "exited" // the error stream carried the command's exit status
	ReasonClientClosed  = "client closed"
	ReasonKubeletClosed = "kubelet disconnected" // or the connection broke, with no exit status
	ReasonIdleTimeout   = "idle timeout"
	ReasonMaxDuration   = "max duration"
	ReasonProxyShutdown = "proxy shutdown"
	// ReasonKilledBy is followed by the name of who deleted the session's execsession.
	ReasonKilledBy = "killed by "
	// ReasonLockedBy is followed by the execlock that ended the session, and its reason.
	ReasonLockedBy = "locked by "
	// ReasonRecordingFailed: the recording could not be written, under fail-closed recording.
	ReasonRecordingFailed = "recording failed"
	// ReasonAuditUnavailable: a command line's audit record could not be written, under fail-closed.
	ReasonAuditUnavailable = "audit unavailable"
	ReasonNotUpgraded      = "kubelet refused"
	// ReasonProtocolError: the client sent frames the server would not read as exec-proxy read them
	// (see wire.Observer.ClientProtocolError).
	ReasonProtocolError = "client protocol error"
	// ReasonModeratorLeft: the session's rule requires a moderator, and none was present for its
	// grace period.
	ReasonModeratorLeft = "moderator left"
)
