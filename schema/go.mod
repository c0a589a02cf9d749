module github.com/ripple-rt/ripple/schema

go 1.26.8
