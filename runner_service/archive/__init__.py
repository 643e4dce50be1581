"""The binary log archive's long-running side: `dbfleet archive run` streams each primary's binlogs."""
