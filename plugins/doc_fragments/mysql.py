# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Login options shared by every dbfleet.mysql module (see module_utils/mysql.py)."""

    DOCUMENTATION = r'''
options:
  login_user:
    description:
      - The username used to authenticate with.
      - When not given, the C(user) of the C([client]) section of O(config_file) is used.
    type: str
  login_password:
    description:
      - The password used to authenticate with.
      - Never shown in output, logs or errors.
    type: str
  login_host:
    description:
      - Host running the database.
      - Ignored when O(login_unix_socket) is given.
    type: str
    default: localhost
  login_port:
    description:
      - Port of the MySQL/MariaDB server. Requires O(login_host) to be something other
        than C(localhost) when a socket would otherwise be used.
    type: int
    default: 3306
  login_unix_socket:
    description:
      - The path to a Unix domain socket for local connections.
    type: str
  connect_timeout:
    description:
      - The connection timeout in seconds; also bounds each read and write on the connection.
    type: int
    default: 30
  config_file:
    description:
      - Option file to read connection defaults from (its C([client]) section).
      - Options given to the module take precedence over the file.
      - Set to the empty string C('') to disable reading any file.
      - A missing file is ignored.
    type: path
    default: '~/.my.cnf'
  ca_cert:
    description:
      - The path to a Certificate Authority (CA) certificate. Turns on TLS.
    type: path
    aliases: [ ssl_ca ]
  client_cert:
    description:
      - The path to a client public key certificate.
    type: path
    aliases: [ ssl_cert ]
  client_key:
    description:
      - The path to the client private key.
    type: path
    aliases: [ ssl_key ]
  ca_cert_data:
    description:
      - The CA certificate as PEM text instead of a path, written for the run into the module's own
        temporary directory (mode 0700, removed when the module ends). Turns on TLS.
      - dbfleet's MySQL credentials hand certificates this way (C(login_ca_cert_data)), so they need
        not be installed on the host.
      - Mutually exclusive with O(ca_cert).
    type: str
  client_cert_data:
    description:
      - The client certificate as PEM text instead of a path, like O(ca_cert_data).
      - Mutually exclusive with O(client_cert).
    type: str
  client_key_data:
    description:
      - The client private key as PEM text instead of a path, like O(ca_cert_data); never logged.
      - Mutually exclusive with O(client_key).
    type: str
  check_hostname:
    description:
      - Whether to verify that the server certificate matches O(login_host).
      - Only used together with O(ca_cert); defaults to the TLS library's behaviour when not set.
    type: bool
requirements:
  - PyMySQL (Python library) on the host that runs the module
notes:
  - The module needs PyMySQL where it runs. With O(login_host) pointing to a remote server,
    the module can run on the controller (with O(login_host) set and C(delegate_to) localhost) or on the database host itself.
'''
