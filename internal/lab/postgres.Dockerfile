# A lab host with the PostgreSQL server package of its release installed and
# no cluster, for tests that are not about installing: the package goes in
# exactly as pgfleet's install step puts it in, with postgresql-common told
# first not to create a default cluster.
ARG BASE
FROM ${BASE}
ARG PACKAGE
RUN set -eux; \
    mkdir -p /etc/postgresql-common/createcluster.d; \
    printf '%s\n' '# managed by pgfleet: clusters are created by pgfleet, not by the package' 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/pgfleet.conf; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$PACKAGE"; \
    rm -rf /var/lib/apt/lists/*
