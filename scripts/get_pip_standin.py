"""Stand-in for the get-pip script ansible-test downloads to bootstrap pip in its virtualenvs.

This machine reaches only the package registries, not the host get-pip comes from. ansible-test
looks for a cached copy first (~/.ansible/test/cache/get_pip_<version>.py); scripts/bootstrap.sh
puts this file there. It installs pip from the standard library's ensurepip, then upgrades to
the requested version through the package index like get-pip would.
"""
import os
import subprocess
import sys

GET_PIP_ONLY_FLAGS = {'--no-setuptools', '--no-wheel'}


def main():
    saved = {key: value for key, value in os.environ.items() if key.startswith('PIP_')}
    import ensurepip
    ensurepip.bootstrap(upgrade=True)  # clears PIP_* and points PIP_CONFIG_FILE at /dev/null
    os.environ.pop('PIP_CONFIG_FILE', None)
    os.environ.update(saved)  # the package index settings live in pip.conf and PIP_* variables
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_FLAGS]
    subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--upgrade'] + args)


if __name__ == '__main__':
    main()
