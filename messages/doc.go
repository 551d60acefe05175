// Package messages holds the plain structs deer's actors exchange. Messages
// are always sent as pointers. Request/response pairs are named together
// (StatusQuery/StatusReport); events are in the past tense.
package messages
