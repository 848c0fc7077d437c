module github.com/go-ratelimit/ratelimit/grpclimit

go 1.26.0

require (
	github.com/go-ratelimit/ratelimit v0.0.0-20261204021913-50e0e08f6b31
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261026165753-2ffab32bce7e
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
)
