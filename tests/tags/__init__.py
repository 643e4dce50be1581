"""Tag rules and tag filter expressions: pure logic, no servers needed."""
