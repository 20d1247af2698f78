using System.Net.Http.Json;
using System.Text.Json;

namespace TokenGateway.IntegrationTests.Infrastructure;

/// <summary>
/// Two gateway processes behind no balancer (tests pick the replica), sharing one Redis (a key prefix of their own on
/// the shared server) and one simulator upstream.
/// </summary>
/// <remarks>
/// Until the PostgreSQL store is merged, the replicas share teams, keys, policies and the ledger through one SQLite
/// file (WAL mode lets several processes on one machine use it; each replica keeps its own data directory for its
/// ledger journal): <c>Storage:DatabaseFile</c> is the same absolute path on both. Switch to
/// <c>ConnectionStrings:Postgres</c> when that lands.
/// </remarks>
public sealed class ReplicaPair : IAsyncDisposable
{
    private readonly string _root;

    private ReplicaPair(string root, SimulatorServer simulator, GatewayProcess a, GatewayProcess b, string prefix)
    {
        _root = root;
        Simulator = simulator;
        A = a;
        B = b;
        Prefix = prefix;
    }

    public SimulatorServer Simulator { get; }

    public GatewayProcess A { get; }

    public GatewayProcess B { get; }

    public string Prefix { get; }

    public static async Task<ReplicaPair> StartAsync(string redisEndpoint, IDictionary<string, string>? settings = null)
    {
        var simulator = await SimulatorServer.StartAsync(GatewayServer.ProviderKey);
        var root = Path.Combine(Path.GetTempPath(), "tg-pair-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        var prefix = RedisServers.NewPrefix();
        Dictionary<string, string> Environment(string name)
        {
            var data = Path.Combine(root, name);
            Directory.CreateDirectory(data);
            var environment = new Dictionary<string, string>
            {
                ["Storage__DataDirectory"] = data,
                ["Storage__DatabaseFile"] = Path.Combine(root, "shared.db"),
                ["ConnectionStrings__Redis"] = redisEndpoint,
                ["Redis__KeyPrefix"] = prefix,
            };
            foreach (var (k, v) in settings ?? new Dictionary<string, string>())
            {
                environment[k] = v;
            }

            return environment;
        }

        // One after the other: the second applies no migration (the first did, under SQLite's write lock).
        var a = await GatewayProcess.StartAsync(simulator.Address, Environment("a"));
        var b = await GatewayProcess.StartAsync(simulator.Address, Environment("b"));
        return new ReplicaPair(root, simulator, a, b, prefix);
    }

    /// <summary>Creates a team and a key through replica A's admin API.</summary>
    public async Task<(string TeamId, string KeyId, string Key)> CreateTeamWithKeyAsync(string name)
    {
        var team = await A.Admin.PostAsJsonAsync("/admin/teams", new { name });
        team.EnsureSuccessStatusCode();
        var teamId = (await team.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        var key = await A.Admin.PostAsJsonAsync($"/admin/teams/{teamId}/keys", new { name = name + "-key" });
        key.EnsureSuccessStatusCode();
        var body = await key.Content.ReadFromJsonAsync<JsonElement>();
        return (teamId, body.GetProperty("id").GetString()!, body.GetProperty("key").GetString()!);
    }

    public async ValueTask DisposeAsync()
    {
        await A.DisposeAsync();
        await B.DisposeAsync();
        await Simulator.DisposeAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}
