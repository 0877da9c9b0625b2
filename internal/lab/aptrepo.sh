#!/bin/sh
# Start of the lab's apt repository host: make a signing key for this
# container alone, write and sign the repository's Release (InRelease and
# Release.gpg, as apt reads either), put the public key beside the
# repository for the lab to hand to pgfleet, then serve /srv/repo over HTTP.
set -eu
cd /srv/repo
suite="${RELEASE}-pgdg"
export GNUPGHOME=/root/.gnupg
if [ ! -s lab-key.asc ]; then
    mkdir -p -m 0700 "$GNUPGHOME"
    gpg --batch --quiet --passphrase '' --quick-gen-key 'pgfleet lab repository' ed25519 sign never
    apt-ftparchive \
        -o APT::FTPArchive::Release::Origin="pgfleet lab" \
        -o APT::FTPArchive::Release::Label="pgfleet lab PGDG" \
        -o APT::FTPArchive::Release::Suite="$suite" \
        -o APT::FTPArchive::Release::Codename="$suite" \
        -o APT::FTPArchive::Release::Architectures="$(dpkg --print-architecture)" \
        -o APT::FTPArchive::Release::Components=main \
        release "dists/$suite" > /tmp/Release
    mv /tmp/Release "dists/$suite/Release"
    gpg --batch --yes --clearsign -o "dists/$suite/InRelease" "dists/$suite/Release"
    gpg --batch --yes -abs -o "dists/$suite/Release.gpg" "dists/$suite/Release"
    gpg --batch --armor --export > lab-key.asc.tmp
    mv lab-key.asc.tmp lab-key.asc
fi
exec busybox httpd -f -p 80 -h /srv/repo
