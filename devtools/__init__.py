"""Tools for working on dbfleet from a checkout (the local MariaDB fleet, `make fleet`): used by
the tests, the demo and bench/, never installed with the package or shipped in the collection."""
