"""Learning and measuring fusions: dataset layouts, features folders, training (torch), its
torch mirror of the graph, model cards and the BAH metrics."""
