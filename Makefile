# The test command (as in CI and the README) and the one benchmark command.
.PHONY: test bench

test:
	go test -race ./...

# Runs every benchmark under bench/ and prints one markdown table (bench/run).
bench:
	bench/run
