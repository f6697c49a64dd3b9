# The image deploy/ runs: the static binary of `make build` on distroless, as nonroot (65532).
# Build: make build && docker build -t <registry>/exec-proxy:<tag> .
FROM gcr.io/distroless/static-debian12:nonroot
COPY bin/exec-proxy /exec-proxy
USER 65532:65532
ENTRYPOINT ["/exec-proxy"]
