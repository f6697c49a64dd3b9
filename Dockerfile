# The shape of the image deploy/ runs: the static binary at /exec-proxy on distroless, as nonroot
# (65532). `make image` builds it without Docker or a base image, for amd64 and arm64, with an SBOM
# (docs/image.md); this file stays for those who build with Docker:
# make build && docker build -t <registry>/exec-proxy:<tag> .
FROM gcr.io/distroless/static-debian12:nonroot
COPY bin/exec-proxy /exec-proxy
USER 65532:65532
ENTRYPOINT ["/exec-proxy"]
