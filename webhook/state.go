package webhook

import (
	"sync/atomic"

	"github.com/tollgate-dev/tollgate/policies"
)

// State is everything a request is judged with: the compiled engine (with
// its config) and the exceptions in force. It is replaced whole when
// policies, config or exceptions change, so a request never sees half of a
// reload.
type State struct {
	Engine     *policies.Engine
	Exceptions []policies.Exception
	// Generation counts reloads; the decision log records it.
	Generation int64
	// Images are the image policies in force, by name.
	Images []ImagePolicy

	actions map[string]policies.Action
}

// NewState prepares a state for serving.
func NewState(e *policies.Engine, exceptions []policies.Exception, generation int64) *State {
	s := &State{Engine: e, Exceptions: exceptions, Generation: generation, actions: map[string]policies.Action{}}
	for _, m := range e.Policies() {
		s.actions[m.ID] = e.Action(&m)
	}
	return s
}

// action is the effective action of a policy id.
func (s *State) action(id string) policies.Action { return s.actions[id] }

// StateHolder publishes the current State to concurrent requests.
type StateHolder struct{ p atomic.Pointer[State] }

// Load returns the current state, or nil before the first load.
func (h *StateHolder) Load() *State { return h.p.Load() }

// Store replaces the current state.
func (h *StateHolder) Store(s *State) { h.p.Store(s) }
