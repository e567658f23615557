DROP TABLE event_bus_cursors;
