module github.com/kilometers-ai/kilometers-cli

go 1.27
