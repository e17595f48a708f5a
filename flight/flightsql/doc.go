// Package flightsql serves Arrow Flight SQL over the lakehouse catalog and
// query path, for the ADBC Flight SQL driver, the Go database/sql driver
// (arrow-go's flightsql/driver) and other Flight SQL clients. It
// implements arrow-go's flightsql.Server; flight.Server hands it the
// calls whose command, ticket or action is Flight SQL's (Options.SQL), on
// the listener of `lakehouse serve`, behind the same API keys.
//
// The catalog maps onto Flight SQL's three levels: catalogs are refs
// (branches and tags; a commit `@3f9a1c2e` or `branch@3f9a1c2e` is
// accepted wherever a catalog is named), db schemas are namespaces,
// tables are tables. Statements and prepared statements run through
// flight.Queries — the sandbox of `lakehouse query` — at the ref a
// connection chose (see target): the session option "catalog" (ADBC's
// current catalog) or the call header lakehouse-ref, else main; the
// namespace likewise ("schema", lakehouse-namespace), else default.
//
// Invariants:
//   - Read-only: statement updates, prepared updates, bulk ingest,
//     Substrait plans and transactions are refused with InvalidArgument or
//     Unimplemented and a hint; nothing here writes the catalog.
//   - A statement's query starts in GetFlightInfo (so its errors and schema
//     come back there) and waits up to Options.QueryTTL for the DoGet of
//     its ticket; only the caller who started it may read it.
//   - Every call is counted in the server's metrics (Options.Metrics,
//     /metrics) as the server's own are, by method named "sql." and the
//     Flight method or action type; a statement's stream is a query.
//   - Sessions (the options a connection set) and prepared statements
//     live in the server's memory, a session found by the id in its
//     cookie; both are dropped when closed or after Options.PreparedTTL
//     unused, and with the server.
//
// Caveats:
//   - Parameters of prepared statements are substituted as SQL literals
//     for the `?` placeholders outside quotes and comments, one row of
//     numbers, strings, booleans, dates, timestamps or nulls at a time.
//   - A client that does not send cookies back (ADBC without
//     adbc.flight.sql.rpc.with_cookie_middleware) loses the current
//     catalog it set; the lakehouse-ref header works for every client.
//   - The session cookie is set on the first GetSqlInfo or
//     SetSessionOptions of a connection: arrow-go's client middleware may
//     miss a cookie of a streaming call (an action), never one of a unary
//     call such as GetFlightInfo, and ADBC asks GetSqlInfo on connect.
package flightsql
