# Sourced by the tool scripts that install Debian packages (`make tools` runs only *.sh).

# as_root COMMAND...: run it as root, through sudo unless this is root already.
as_root() {
  if [ "$(id -u)" = "0" ]; then
    "$@"
  else
    sudo "$@"
  fi
}

# apt_install PACKAGE...: without recommended packages, quietly; the package lists refreshed once.
apt_install() {
  if [ -z "${_APT_UPDATED:-}" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    _APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
