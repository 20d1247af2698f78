using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using TokenGateway.Hosting;

namespace TokenGateway.IntegrationTests.Infrastructure;

/// <summary>
/// A real gateway on a loopback Kestrel port in front of a real simulator listener, with its own temp data directory,
/// an admin key, and one team + virtual key ready to use.
/// </summary>
public sealed class GatewayServer : IAsyncDisposable
{
    public const string ProviderKey = "sk-provider-test-7f3a9c1e5b";
    public const string ProviderKeyEnv = "TG_IT_PROVIDER_KEY";
    public const string AdminKey = "tga-integration-admin-key-0123456789";

    private readonly WebApplication _app;

    private GatewayServer(WebApplication app, SimulatorServer simulator, string address, string dataDirectory, string adminKey)
    {
        _app = app;
        Simulator = simulator;
        Address = address;
        DataDirectory = dataDirectory;
        Admin = new HttpClient { BaseAddress = new Uri(address) };
        Admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
    }

    public string Address { get; }
    public SimulatorServer Simulator { get; }
    public string DataDirectory { get; }
    public HttpClient Admin { get; }
    public IServiceProvider Services => _app.Services;
    public string TeamId { get; private set; } = "";
    public string VirtualKey { get; private set; } = "";
    public Uri OpenAIEndpoint => new(Address + "v1");

    /// <param name="adminKey">The key the <see cref="Admin"/> client sends (when settings replace TOKENGATEWAY_ADMIN_KEY).</param>
    public static async Task<GatewayServer> StartAsync(IDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null,
        string adminKey = AdminKey)
    {
        Environment.SetEnvironmentVariable(ProviderKeyEnv, ProviderKey);
        var simulator = await SimulatorServer.StartAsync(ProviderKey);
        var data = Path.Combine(Path.GetTempPath(), "tg-it-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);

        var builder = GatewayApplication.CreateBuilder(["--urls", "http://127.0.0.1:0"]);
        var config = new Dictionary<string, string?>
        {
            ["TOKENGATEWAY_ADMIN_KEY"] = AdminKey,
            ["Gateway:Simulator"] = "Never",
            ["Storage:DataDirectory"] = data,
            ["Serilog:MinimumLevel:Default"] = "Warning",
            ["Providers:openai:Destinations:0"] = simulator.Address,
            ["Providers:openai:ApiKeyEnv"] = ProviderKeyEnv,
            // The simulator's fault header crosses the gateway only because the provider allowlist names it.
            ["Providers:openai:ForwardRequestHeaders:0"] = "x-simulator-fault",
            ["Providers:anthropic:ForwardRequestHeaders:0"] = "x-simulator-fault",
            ["Providers:azure:ForwardRequestHeaders:0"] = "x-simulator-fault",
            ["Providers:anthropic:Destinations:0"] = simulator.Address,
            ["Providers:anthropic:ApiKeyEnv"] = ProviderKeyEnv,
            ["Providers:azure:Type"] = "AzureOpenAI",
            ["Providers:azure:Destinations:0"] = simulator.Address,
            ["Providers:azure:ApiKeyEnv"] = ProviderKeyEnv,
            ["Models:azure-gpt-4o:Provider"] = "azure",
            ["Models:azure-gpt-4o:Tokenizer"] = "o200k_base",
            ["Models:azure-gpt-4o:InputPrice"] = "2.5",
            ["Models:azure-gpt-4o:OutputPrice"] = "10",
            // Suites that test one provider failure see it as it is: no retries, and breakers that never open on the
            // shared fixture's fault traffic. Resilience tests (Resilience/RetryTests) set their own values.
            ["Resilience:Retry:MaxAttempts"] = "1",
            ["Resilience:CircuitBreaker:MinimumThroughput"] = "1000000",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>())
        {
            config[k] = v;
        }

        builder.Configuration.AddInMemoryCollection(config);
        services?.Invoke(builder.Services);
        var app = GatewayApplication.Build(builder);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        var server = new GatewayServer(app, simulator, address.TrimEnd('/') + "/", data, adminKey);
        (server.TeamId, server.VirtualKey) = await server.CreateTeamWithKeyAsync("it-team");
        return server;
    }

    public async Task<(string TeamId, string Key)> CreateTeamWithKeyAsync(string name)
    {
        var team = await Admin.PostAsJsonAsync("/admin/teams", new { name });
        team.EnsureSuccessStatusCode();
        var teamId = (await team.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        var key = await Admin.PostAsJsonAsync($"/admin/teams/{teamId}/keys", new { name = name + "-key" });
        key.EnsureSuccessStatusCode();
        return (teamId, (await key.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!);
    }

    public HttpClient CreateClient(string? key = null)
    {
        var client = new HttpClient { BaseAddress = new Uri(Address) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key ?? VirtualKey);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        Admin.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        await Simulator.DisposeAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // SQLite may still hold the WAL briefly on some file systems; temp cleanup is best effort.
        }
    }
}
