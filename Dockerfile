# The tollgate image: the static binaries `make image-binary` builds
# (tollgate, and the trivy it runs as its own process to scan images), on
# distroless (CA certificates and tzdata, no shell), as the nonroot user.
#
#   make image-binary
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/tollgate-dev/tollgate:0.1.0 .
#
# The chart runs it with a read-only root filesystem; `tollgate serve`
# writes only its certificates (an emptyDir) and logs to stdout and stderr.
FROM gcr.io/distroless/static-debian12:nonroot
ARG TARGETOS=linux
ARG TARGETARCH=amd64
COPY --chmod=0555 bin/image/${TARGETOS}-${TARGETARCH}/tollgate /usr/local/bin/tollgate
COPY --chmod=0555 bin/image/${TARGETOS}-${TARGETARCH}/trivy /usr/local/bin/trivy
USER 65532:65532
EXPOSE 9443
ENTRYPOINT ["/usr/local/bin/tollgate", "serve"]
