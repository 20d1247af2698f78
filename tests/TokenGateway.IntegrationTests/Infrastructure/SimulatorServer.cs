using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TokenGateway.Simulator;

namespace TokenGateway.IntegrationTests.Infrastructure;

/// <summary>The simulator as a real provider would be: its own Kestrel listener on loopback, requiring the provider key.</summary>
public sealed class SimulatorServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private SimulatorServer(WebApplication app, string address)
    {
        _app = app;
        Address = address;
        Recorder = app.Services.GetRequiredService<SimulatorRecorder>();
    }

    public string Address { get; }

    public SimulatorRecorder Recorder { get; }

    /// <param name="requiredApiKey">The provider key the simulator demands.</param>
    /// <param name="prefix">A path prefix for every route (e.g. <c>/v1beta/openai</c> stands in for a provider rooted there).</param>
    public static async Task<SimulatorServer> StartAsync(string requiredApiKey, string prefix = "")
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddLlmSimulator(o => o.RequiredApiKey = requiredApiKey);
        var app = builder.Build();
        app.MapLlmSimulator(prefix);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new SimulatorServer(app, address.TrimEnd('/') + "/");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
