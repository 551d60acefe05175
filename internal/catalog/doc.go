// Package catalog knows which upstream serves a model id: the configured
// `models` lists, plus what each upstream's own GET /v1/models listed (its
// discovered models). It is the functional core of model routing (SPEC §4):
// a Catalog is an immutable value, time is an argument, and nothing here
// does I/O. Package deer fetches the listings through the task path and
// keeps the current Catalog; httpapi asks deer.
//
// Routing order (Resolve), one source of truth for the OpenAI endpoints and
// GET /v1/models:
//
//  1. "NAME/model" where NAME is an upstream → NAME with "model";
//  2. an upstream whose configured models list the exact id;
//  3. an upstream whose discovered list holds the exact id (the first by
//     name when several do);
//  4. default_upstream, when set;
//  5. none: model_not_found.
//
// Listing rule (List): every (upstream, model) pair deer knows appears once,
// by its bare id when that id routes back to the same pair, else as
// "UPSTREAM/model" — which rule 1 always routes back. So every listed id
// reaches the upstream that listed it, and nothing is listed twice.
package catalog
