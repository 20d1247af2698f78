using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Npgsql;
using TokenGateway.IntegrationTests.Infrastructure;
using TokenGateway.Storage.Tests.TestSupport;

namespace TokenGateway.IntegrationTests.ScaleOut;

/// <summary>
/// PostgreSQL unreachable under two replicas (issue #14): both keep proxying for keys they know, both report degraded,
/// and after recovery every event of the outage lands once. The one-gateway detail (spool depth, token sums) is in
/// <see cref="PostgresGatewayTests"/>.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class PostgresOutageTests
{
    [SkippableFact]
    public async Task PostgresDown_BothReplicasKeepProxyingKnownKeys_ReadyzDegraded_EventsLandOnceAfterRecovery()
    {
        RedisServers.SkipUnlessShared();
        Skip.If(PostgresTestServer.UnavailableReason is not null, PostgresTestServer.UnavailableReason);
        await using var pair = await ReplicaPair.StartAsync(RedisServers.SharedEndpoint, new Dictionary<string, string>
        {
            ["Storage__LedgerMaxRetryDelay"] = "00:00:00.500",
        });
        var (teamId, _, key) = await pair.CreateTeamWithKeyAsync("pair-pgdown");
        using var onA = pair.A.CreateClient(key);
        using var onB = pair.B.CreateClient(key);
        var seen = new List<string>();
        async Task CallAsync(HttpClient client, string prompt)
        {
            using var response = await client.PostAsync("/v1/chat/completions",
                new StringContent($"{{\"model\":\"gpt-4o\",\"max_tokens\":16,\"messages\":[{{\"role\":\"user\",\"content\":\"{prompt}\"}}]}}", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            seen.Add(response.Headers.GetValues("x-tokengateway-request-id").Single());
        }

        await CallAsync(onA, "before, on A"); // each replica now knows the key and the team's policy
        await CallAsync(onB, "before, on B");

        await PostgresTestServer.BlockAsync(pair.Postgres!);
        try
        {
            foreach (var replica in new[] { pair.A, pair.B })
            {
                using var readiness = await replica.Admin.GetAsync("/readyz");
                var body = await readiness.Content.ReadFromJsonAsync<JsonElement>();
                Assert.Equal(HttpStatusCode.OK, readiness.StatusCode); // still serving: stays behind the balancer
                Assert.Equal("degraded", body.GetProperty("status").GetString());
                Assert.Equal("unavailable", body.GetProperty("dependencies").GetProperty("postgres").GetString());
            }

            for (var i = 0; i < 3; i++)
            {
                await CallAsync(onA, $"during the outage, on A {i}");
                await CallAsync(onB, $"during the outage, on B {i}");
            }
        }
        finally
        {
            await PostgresTestServer.UnblockAsync(pair.Postgres!);
        }

        // Each replica replays its own spool; read through either replica, every request is there exactly once.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        IReadOnlyList<(string RequestId, decimal CostUsd)> events;
        do
        {
            await Task.Delay(200);
            events = await PairLedger.EventsAsync(pair.A, teamId);
        }
        while (events.Count < seen.Count && DateTime.UtcNow < deadline);

        Assert.Equal(seen.Order(StringComparer.Ordinal), events.Select(e => e.RequestId).Order(StringComparer.Ordinal));
        Assert.Equal(events.Count, (await PairLedger.EventsAsync(pair.B, teamId)).Count);
        await using var connection = new NpgsqlConnection(pair.Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*), count(DISTINCT request_id) FROM usage_events WHERE team_id = @team", connection);
        command.Parameters.AddWithValue("team", teamId);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal((8L, 8L), (reader.GetInt64(0), reader.GetInt64(1)));
        foreach (var replica in new[] { pair.A, pair.B })
        {
            using var ready = await replica.Admin.GetAsync("/readyz");
            Assert.Equal("ready", (await ready.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        }
    }
}
