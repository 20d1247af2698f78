namespace TokenGateway.IntegrationTests.Infrastructure;

/// <summary>Tests that start processes or measure load run alone, after the parallel ones.</summary>
[CollectionDefinition(nameof(SerialCollection), DisableParallelization = true)]
public sealed class SerialCollection;
