// Command witness runs a witnessnet node and helps set up local networks.
//
//	witness demo                   a complete supply chain through a local network, explained
//	witness run --config FILE      run one node
//	witness testnet --nodes N --dir DIR [--base-port P]
//	                               write configs and keys for a local network
//	witness keygen --name NAME --url URL [--dir DIR]
//	                               make one member's keys
//	witness membership sign|merge|submit
//	                               sign, merge and submit the next membership version
//	witness rebuild --data-dir DIR set a stopped member's replicated state aside
package main

import (
	"fmt"
	"os"
)

const usage = `usage: witness <command> [flags]

commands:
  demo     run a supply chain through a local four-organization network and explain it
  run      run one node (witness run --config DIR/node1/witness.yaml)
  testnet  write a ready local network (witness testnet --nodes 3 --dir ./testnet)
  keygen   make one member's keys and print its policy and membership lines
  membership
           sign, merge and submit the next membership version
  rebuild  set a stopped member's replicated state aside, to be rebuilt from its peers

Run "witness <command> --help" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "run":
		os.Exit(runCmd(args))
	case "testnet":
		os.Exit(testnetCmd(args))
	case "demo":
		os.Exit(demoCmd(args))
	case "keygen":
		os.Exit(keygenCmd(args, os.Stdout, os.Stderr))
	case "membership":
		os.Exit(membershipCmd(args, os.Stdout, os.Stderr))
	case "rebuild":
		os.Exit(rebuildCmd(args, os.Stdout, os.Stderr))
	case "healthcheck":
		os.Exit(healthcheckCmd(args))
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "witness: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
}
