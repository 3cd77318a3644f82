# kiln: one image for `kiln worker` and `kiln serve`.
# Build:  docker build -t kiln .
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so source edits do not re-download them.
COPY go.mod go.sum ./
RUN go mod download
# buildkitd at the version go.mod requires (it is one of go.mod's tools), as
# .ci/run builds it, so the daemon speaks the protocol of kiln's client. It
# needs only go.mod and go.sum, so a source edit does not rebuild it.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ github.com/moby/buildkit/cmd/buildkitd
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/kiln ./cmd/kiln
# kiln's Packer plugin (data "kiln-ami"), its own module; kiln finds it next
# to itself and installs it for bakes. Plugins need a Packer of 1.7 or later
# (kiln worker --packer); Debian's 1.6.6 below bakes templates without them.
RUN CGO_ENABLED=0 go build -C packer-plugin-kiln -trimpath -ldflags="-s -w" -o /out/

FROM debian:bookworm-slim
# git clones repositories; bash runs buildspecs; packer bakes AMIs (Debian's
# 1.6.6, amazon-ebs built in); runc is BuildKit's container runtime, and
# containernetworking-plugins and iptables put build containers on a bridge
# fenced off the worker (internal/buildkit/network.go); curl serves the
# health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git bash ca-certificates openssh-client curl packer \
      runc containernetworking-plugins iptables \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 kiln \
 && mkdir -p /var/lib/kiln && chown kiln /var/lib/kiln
COPY --from=build /out/kiln /out/buildkitd /out/packer-plugin-kiln /usr/local/bin/
# kiln serve runs as this user. kiln worker starts buildkitd only as root
# (overlayfs snapshots, runc), and as root gives each build a user of its
# own: docker-compose.yml runs the worker service as root, privileged.
USER kiln
WORKDIR /home/kiln
ENV KILN_DATA_DIR=/var/lib/kiln KILN_CONFIG=/etc/kiln/kiln.yaml KILN_LOG_FORMAT=json
ENTRYPOINT ["kiln"]
CMD ["worker"]
