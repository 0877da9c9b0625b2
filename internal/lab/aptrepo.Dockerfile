# The lab's apt repository host: a repository in the PostgreSQL project's
# (PGDG) layout, dists/RELEASE-pgdg/main/binary-ARCH, served over HTTP on
# the lab's network, for testing pgfleet's postgres.repository: pgdg without
# the real one. It holds Debian's own PostgreSQL PGVERSION packages, the
# server's and the client's given a version ending in ".pgdg+1" as the
# project's builds have; the lists are signed at start by a key made for
# that one container (aptrepo.sh).
# BASE is the same Debian base as the lab hosts' (see images.go).
ARG BASE
FROM ${BASE}
ARG RELEASE
ARG PGVERSION
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends apt-utils gnupg busybox; \
    mkdir -p /srv/repo/pool/main "/srv/repo/dists/${RELEASE}-pgdg/main/binary-$(dpkg --print-architecture)" /tmp/debs; \
    cd /tmp/debs; \
    apt-get download "postgresql-${PGVERSION}" "postgresql-client-${PGVERSION}" \
        postgresql-common postgresql-client-common libpq5; \
    for p in "postgresql-${PGVERSION}" "postgresql-client-${PGVERSION}"; do \
        dpkg-deb -R "${p}"_*.deb x; \
        sed -i 's/^Version: .*/&.pgdg+1/' x/DEBIAN/control; \
        dpkg-deb -Zgzip -z1 -b x /srv/repo/pool/main/ >/dev/null; \
        rm -rf x "${p}"_*.deb; \
    done; \
    mv ./*.deb /srv/repo/pool/main/; \
    cd /srv/repo; \
    d="dists/${RELEASE}-pgdg/main/binary-$(dpkg --print-architecture)"; \
    apt-ftparchive packages pool > "$d/Packages"; \
    gzip -9k "$d/Packages"; \
    grep -q "^Version: .*\.pgdg+1$" "$d/Packages"; \
    rm -rf /tmp/debs /var/lib/apt/lists/*
ENV RELEASE=${RELEASE}
COPY aptrepo.sh /usr/local/sbin/lab-aptrepo
ENTRYPOINT ["/usr/local/sbin/lab-aptrepo"]
