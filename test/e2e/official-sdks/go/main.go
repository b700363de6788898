// Functions written with the official StateFun Go SDK (statefun-sdk-go v3.3.0, from the Go
// module proxy) for Eddy's end-to-end tests; scripts/ensure-official-sdks.sh builds them.
//
//	official-sdks-go [PORT]
//
// Serves go/greeter and go/counter on 127.0.0.1:PORT (0 or absent: any free port) and prints
// the port on stdout as its first line. Stops when stdin closes, so it never outlives the test
// that started it, or on SIGTERM.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"
)

var visitsSpec = statefun.ValueSpec{Name: "visits", ValueType: statefun.Int32Type}
var countSpec = statefun.ValueSpec{Name: "count", ValueType: statefun.Int32Type}

// greeter replies to its caller "Welcome <id>!" on the first visit, "Welcome back <id>!" after.
func greeter(ctx statefun.Context, _ statefun.Message) error {
	var visits int32
	ctx.Storage().Get(visitsSpec, &visits)
	visits++
	ctx.Storage().Set(visitsSpec, visits)
	text := fmt.Sprintf("Welcome %s!", ctx.Self().Id)
	if visits > 1 {
		text = fmt.Sprintf("Welcome back %s!", ctx.Self().Id)
	}
	if caller := ctx.Caller(); caller != nil {
		ctx.Send(statefun.MessageBuilder{Target: *caller, Value: text})
	}
	return nil
}

// counter counts its messages and replies the new count to its caller, as an int.
func counter(ctx statefun.Context, _ statefun.Message) error {
	var count int32
	ctx.Storage().Get(countSpec, &count)
	count++
	ctx.Storage().Set(countSpec, count)
	if caller := ctx.Caller(); caller != nil {
		ctx.Send(statefun.MessageBuilder{Target: *caller, Value: count})
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "official-sdks-go: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	port := "0"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	functions := statefun.StatefulFunctionsBuilder()
	specs := []statefun.StatefulFunctionSpec{
		{FunctionType: statefun.TypeNameFrom("go/greeter"), States: []statefun.ValueSpec{visitsSpec}, Function: statefun.StatefulFunctionPointer(greeter)},
		{FunctionType: statefun.TypeNameFrom("go/counter"), States: []statefun.ValueSpec{countSpec}, Function: statefun.StatefulFunctionPointer(counter)},
	}
	for _, spec := range specs {
		if err := functions.WithSpec(spec); err != nil {
			return err
		}
	}
	listener, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	fmt.Println(listener.Addr().(*net.TCPAddr).Port)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	return http.Serve(listener, functions.AsHandler())
}
