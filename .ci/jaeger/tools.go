//go:build tools

// Package tools pins the Jaeger v2 binary (module tag v1.76.0 = Jaeger v2.13.0) for the tests.
package tools

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
