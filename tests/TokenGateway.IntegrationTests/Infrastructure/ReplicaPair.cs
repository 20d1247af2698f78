using System.Net.Http.Json;
using System.Text.Json;
using TokenGateway.Storage.Tests.TestSupport;

namespace TokenGateway.IntegrationTests.Infrastructure;

/// <summary>
/// Two gateway processes behind no balancer (tests pick the replica), sharing one Redis (a key prefix of their own on
/// the shared server), one store and one simulator upstream.
/// </summary>
/// <remarks>
/// The store is a fresh PostgreSQL database of the pair's own (<c>ConnectionStrings:Postgres</c>, dropped on dispose)
/// when the test server answers (<see cref="PostgresTestServer"/>); otherwise the replicas share teams, keys,
/// policies and the ledger through one SQLite file (WAL mode lets several processes on one machine use it):
/// <c>Storage:DatabaseFile</c> is the same absolute path on both. Either way each replica keeps its own data
/// directory for its ledger journal (the spool), so a replica restarted on it replays what it had not yet written.
/// </remarks>
public sealed class ReplicaPair : IAsyncDisposable
{
    private readonly string _root;
    private readonly Dictionary<string, string> _environmentA;

    private ReplicaPair(string root, SimulatorServer simulator, GatewayProcess a, GatewayProcess b, string prefix, string? postgres, Dictionary<string, string> environmentA)
    {
        _root = root;
        Simulator = simulator;
        A = a;
        B = b;
        Prefix = prefix;
        Postgres = postgres;
        _environmentA = environmentA;
    }

    public SimulatorServer Simulator { get; }

    /// <summary>Replica A (replaced by <see cref="RestartAAsync"/>).</summary>
    public GatewayProcess A { get; private set; }

    public GatewayProcess B { get; }

    public string Prefix { get; }

    /// <summary>Connection string of the pair's PostgreSQL database, or null when the pair shares a SQLite file.</summary>
    public string? Postgres { get; }

    /// <summary>
    /// Starts replica A again on its data directory (its journal is the spool it replays) after a kill; the new
    /// process listens on a new port, so clients of the old A must be made again.
    /// </summary>
    public async Task RestartAAsync()
    {
        await A.DisposeAsync();
        A = await GatewayProcess.StartAsync(Simulator.Address, _environmentA);
    }

    public static async Task<ReplicaPair> StartAsync(string redisEndpoint, IDictionary<string, string>? settings = null)
    {
        var simulator = await SimulatorServer.StartAsync(GatewayServer.ProviderKey);
        var root = Path.Combine(Path.GetTempPath(), "tg-pair-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        var prefix = RedisServers.NewPrefix();
        var postgres = PostgresTestServer.UnavailableReason is null ? await PostgresTestServer.CreateDatabaseAsync("pair") : null;
        Dictionary<string, string> Environment(string name)
        {
            var data = Path.Combine(root, name);
            Directory.CreateDirectory(data);
            var environment = new Dictionary<string, string>
            {
                ["Storage__DataDirectory"] = data,
                ["ConnectionStrings__Redis"] = redisEndpoint,
                ["Redis__KeyPrefix"] = prefix,
            };
            if (postgres is null)
            {
                environment["Storage__DatabaseFile"] = Path.Combine(root, "shared.db");
            }
            else
            {
                environment["ConnectionStrings__Postgres"] = postgres;
            }

            foreach (var (k, v) in settings ?? new Dictionary<string, string>())
            {
                environment[k] = v;
            }

            return environment;
        }

        // One after the other: the second applies no migration (the first did, under SQLite's write lock or
        // PostgreSQL's advisory lock).
        var environmentA = Environment("a");
        var a = await GatewayProcess.StartAsync(simulator.Address, environmentA);
        var b = await GatewayProcess.StartAsync(simulator.Address, Environment("b"));
        return new ReplicaPair(root, simulator, a, b, prefix, postgres, environmentA);
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
        if (Postgres is not null)
        {
            await PostgresTestServer.DropDatabaseAsync(Postgres);
        }

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
