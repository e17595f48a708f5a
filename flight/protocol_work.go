package flight

import (
	"encoding/json"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// The work stream. A worker opens one Flight DoExchange on its control
// plane, whose first message's descriptor command is a WorkCommand naming
// the worker and its lease. No record batch travels on it: every message
// is one FlightData whose AppMetadata is the JSON of a WorkMessage.
//
//	control → worker: task {id, body}, cancel {id}, note {body}; open {}
//	                  once, when the stream is accepted
//	worker → control: event {id, body}, result {id, body},
//	                  error {id, code, message, hint}
//
// Task ids are unique per control plane; a task ends with one result or
// one error, after its events. A cancel for a task the worker no longer
// runs is ignored, as is anything for an id the receiver does not know.

// WorkProtocol is the Protocol of every WorkCommand: a change that
// breaks a message's meaning gets a new one.
const WorkProtocol = ActionPrefix + "Work"

// WorkCommand is the FlightDescriptor command of the work stream.
type WorkCommand struct {
	// Protocol is WorkProtocol.
	Protocol string `json:"protocol"`
	// Worker and Lease are the worker's name and its live lease
	// (fleet.Lease.ID): the stream lives as long as the lease.
	Worker string `json:"worker"`
	Lease  string `json:"lease"`
}

// The types of WorkMessage.
const (
	msgOpen   = "open"
	msgTask   = "task"
	msgCancel = "cancel"
	msgNote   = "note"
	msgEvent  = "event"
	msgResult = "result"
	msgError  = "error"
)

// WorkMessage is one message of the work stream, in a FlightData's
// AppMetadata.
type WorkMessage struct {
	// Type is open, task, cancel, note (control → worker), event, result
	// or error (worker → control).
	Type string `json:"type"`
	// ID is the task's (task, cancel, event, result, error).
	ID uint64 `json:"id,omitempty"`
	// Body is the task, note, event or result JSON.
	Body json.RawMessage `json:"body,omitempty"`
	// Code, Message and Hint are an error's: Code its errdefs class name
	// (as in the ErrorMarker line of a status).
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Hint    string `json:"hint,omitempty"`
}

// workErrorMessage is the error message of task id.
func workErrorMessage(id uint64, err error) WorkMessage {
	msg, hint := errdefs.Split(err)
	return WorkMessage{Type: msgError, ID: id, Code: errdefs.ClassName(err), Message: msg, Hint: hint}
}

// err rebuilds the errdefs error of an error message.
func (m WorkMessage) err() error {
	class := classByName(m.Code)
	if m.Hint != "" {
		return errdefs.WithHint(class, m.Hint, "%s", m.Message)
	}
	return errdefs.New(class, "%s", m.Message)
}
