// The S3-compatible server exec-proxy's tests run (hack/build-s3server.sh builds it): its own
// module, so that gofakes3 and its AWS SDK stay out of exec-proxy's go.mod.
module github.com/exec-proxy/exec-proxy/hack/tools/s3server

go 1.26.0

require (
	github.com/aws/aws-sdk-go-v2 v1.48.0
	github.com/johannesboyne/gofakes3 v1.2.0
)

require (
	github.com/aws/smithy-go v1.28.9 // indirect
	github.com/ryszard/goskiplist v0.0.0-20150312221310-2dfbae5fcf46 // indirect
	go.etcd.io/bbolt v1.3.5 // indirect
	go.shabbyrobe.org/gocovmerge v0.0.0-20230507111327-fa4f82cfbf4d // indirect
	golang.org/x/sys v0.7.0 // indirect
	golang.org/x/tools v0.8.0 // indirect
	gopkg.in/check.v1 v1.0.0-20201130134442-10cb98267c6c // indirect
	gopkg.in/mgo.v2 v2.0.0-20180705113604-9856a29383ce // indirect
)
