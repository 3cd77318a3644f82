# kiln: one image for `kiln worker` and `kiln serve`.
# Build:  docker build -t kiln .
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so source edits do not re-download them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/kiln ./cmd/kiln

FROM debian:bookworm-slim
# git clones repositories; bash runs buildspecs; packer bakes AMIs (Debian's
# 1.6.6, amazon-ebs built in); curl serves the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git bash ca-certificates openssh-client curl packer \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 kiln \
 && mkdir -p /var/lib/kiln && chown kiln /var/lib/kiln
COPY --from=build /out/kiln /usr/local/bin/kiln
USER kiln
WORKDIR /home/kiln
ENV KILN_DATA_DIR=/var/lib/kiln KILN_CONFIG=/etc/kiln/kiln.yaml KILN_LOG_FORMAT=json
ENTRYPOINT ["kiln"]
CMD ["worker"]
