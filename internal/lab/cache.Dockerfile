# The lab's package cache: apt-cacher-ng, shared by every lab host so that
# repeated PostgreSQL installs do not download the same packages again.
ARG BASE
FROM ${BASE}
ARG MIRROR
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends apt-cacher-ng; \
    rm -rf /var/lib/apt/lists/*; \
    echo "${MIRROR%/}/" > /etc/apt-cacher-ng/backends_debian; \
    printf 'PassThroughPattern: .*\n' > /etc/apt-cacher-ng/zz-pgfleet-lab.conf
EXPOSE 3142
ENTRYPOINT ["/bin/sh", "-c", "mkdir -p /var/cache/apt-cacher-ng && chown -R apt-cacher-ng: /var/cache/apt-cacher-ng /var/log/apt-cacher-ng; exec /usr/sbin/apt-cacher-ng -c /etc/apt-cacher-ng ForeGround=1"]
