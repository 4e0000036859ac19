package main

import "fmt"

func (a *app) autoCommand(arg string) int {
	fmt.Fprintf(a.stderr, "km update: --auto %s is not available in this build\n", arg)
	return exitUsage
}
