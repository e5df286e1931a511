// Package spec owns berth.yaml: the model of an app (services, sidecars,
// tasks) and its parsing and validation. Parse turns the YAML into a Spec
// with defaults applied, or into one *Error that names the file, the line and
// the dotted field ("berth.yaml:7: services.web.memory: ..."), which the CLI
// and the API print as they are.
//
// The YAML is walked as yaml.Node trees rather than unmarshalled into tagged
// structs, because that is what gives every error its line and lets unknown
// keys and wrong types be errors instead of being ignored or coerced. Values
// are checked as they are read (decode.go); rules between fields and services
// run on the finished model (validate.go), so a spec changed or built in code
// can be checked again with Validate.
//
// The package must not touch an engine, the store or the network, and does
// no I/O besides ParseFile reading the one file it is given: build contexts
// are names here, resolved by whoever builds. It imports nothing of berth's,
// so every other package may import it.
package spec
