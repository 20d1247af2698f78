using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;

namespace TokenGateway.Providers;

/// <summary>
/// The built-in simulator on its own loopback Kestrel listener inside the gateway process, so the first
/// <c>dotnet run</c> works with no account and no network and still goes through real HTTP like a provider.
/// </summary>
internal sealed class EmbeddedSimulator : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EmbeddedSimulator(WebApplication app, string address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>Base address, e.g. <c>http://127.0.0.1:41234/</c>.</summary>
    public string Address { get; }

    public static EmbeddedSimulator Start()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddLlmSimulator();
        var app = builder.Build();
        app.MapLlmSimulator();

        // Startup-time only: the proxy configuration needs the bound port before the gateway can serve.
        app.StartAsync().GetAwaiter().GetResult();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new EmbeddedSimulator(app, address.TrimEnd('/') + "/");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
