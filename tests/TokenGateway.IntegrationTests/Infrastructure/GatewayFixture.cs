namespace TokenGateway.IntegrationTests.Infrastructure;

/// <summary>One gateway + simulator shared by the tests of a class (tests never mutate shared state beyond their own requests).</summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    private GatewayServer? _server;

    public GatewayServer Server => _server ?? throw new InvalidOperationException("Not started.");

    public async Task InitializeAsync() => _server = await GatewayServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
