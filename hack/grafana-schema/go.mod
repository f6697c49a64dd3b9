// hack/grafana-schema: checks the dashboards against Grafana's schema for make test-monitoring. Kept
// apart from the product's go.mod so exec-proxy does not depend on the Grafana Foundation SDK.
module github.com/exec-proxy/exec-proxy/hack/grafana-schema

go 1.26.0

require github.com/grafana/grafana-foundation-sdk/go v0.0.22
