# syntax=docker/dockerfile:1
#
# The agent image: /opt/draios holds a self-contained bin/instrument (its own Python,
# libraries and loader; see tools/build_bundle.py) and the default rules. Use it
#   - at build time:  COPY --from=workload-agent:TAG /opt/draios /opt/draios
#   - at run time:    as the ECS sidecar lending its /opt/draios volume, or as the
#                     Kubernetes init container copying /opt/draios into an emptyDir
#                     (`workload-agent patch` writes either for you; docs/deploy.md).

ARG DEBIAN=bookworm-20241111-slim

FROM debian:${DEBIAN} AS build
# A distribution's Python (no DT_RUNPATH), its headers for the tracer's C extension,
# gcc and the static libc for the launcher. Not pinned: the dated base image fixes the
# release, and Debian's mirror drops superseded point versions, which breaks pins.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-dev python3-venv gcc libc6-dev linux-libc-dev libffi-dev binutils ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# everything .dockerignore lets through: the package, tools/, rules/ (when present)
COPY . .
RUN python3 tools/build_bundle.py --out /opt/draios --python /usr/bin/python3.11

# busybox: `cp` for the Kubernetes init container, `true` for the ECS sidecar, ~1.5 MB.
FROM busybox:1.36.1-musl
COPY --from=build /opt/draios /opt/draios
VOLUME ["/opt/draios"]
USER 65534:65534
# The sidecar only lends its volume: exit at once, successfully.
ENTRYPOINT ["/bin/true"]
