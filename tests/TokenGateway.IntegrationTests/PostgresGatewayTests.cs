using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.Core.Metering;
using TokenGateway.IntegrationTests.Infrastructure;
using TokenGateway.Storage.Tests.TestSupport;

namespace TokenGateway.IntegrationTests;

/// <summary>
/// The gateway on the real PostgreSQL server (<c>ConnectionStrings:Postgres</c>): what the SDK saw lands in PostgreSQL,
/// and an outage of the database neither stops proxying nor loses or doubles an event. Skipped when no server answers.
/// </summary>
public sealed class PostgresGatewayTests(PostgresDatabaseFixture databases) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [PostgresFact]
    public async Task OpenAiSdk_ChatCompletion_LandsInPostgresWithTheUsageTheSdkSaw()
    {
        var connectionString = await databases.CreateAsync("gw");
        await using var server = await StartAsync(connectionString);
        var client = new ChatClient("gpt-4o-mini", new ApiKeyCredential(server.VirtualKey), new OpenAIClientOptions { Endpoint = server.OpenAIEndpoint });

        var result = await client.CompleteChatAsync([new UserChatMessage("Which database holds this request?")]);
        Assert.True(result.GetRawResponse().Headers.TryGetValue("x-tokengateway-request-id", out var requestId));
        await server.Services.GetRequiredService<IUsageLedger>().FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT team_id, model, status, input_tokens, output_tokens, cost_usd FROM usage_events WHERE request_id = @id", connection);
        command.Parameters.AddWithValue("id", requestId!);
        await using (var reader = await command.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync(), "the request's usage event is not in PostgreSQL");
            Assert.Equal(server.TeamId, reader.GetString(0));
            Assert.Equal("gpt-4o-mini", reader.GetString(1));
            Assert.Equal("ok", reader.GetString(2));
            Assert.Equal(result.Value.Usage.InputTokenCount, reader.GetInt32(3));
            Assert.Equal(result.Value.Usage.OutputTokenCount, reader.GetInt32(4));
            Assert.True(reader.GetDecimal(5) > 0);
        }

        // The usage API reads PostgreSQL too (the event and the rollup-backed totals), and no SQLite file was made.
        var e = await server.WaitForEventAsync(requestId!);
        Assert.Equal(result.Value.Usage.OutputTokenCount, e.GetProperty("outputTokens").GetInt32());
        var usage = await server.UsageAsync("teamId=" + server.TeamId);
        Assert.Equal(1, usage.GetProperty("totals").GetProperty("requests").GetInt64());
        Assert.Equal(result.Value.Usage.OutputTokenCount, usage.GetProperty("totals").GetProperty("outputTokens").GetInt64());
        Assert.Empty(Directory.GetFiles(server.DataDirectory, "*.db"));
        await using var keys = new NpgsqlCommand("SELECT count(*) FROM virtual_keys WHERE key_hash = @plain OR prefix = @plain", connection);
        keys.Parameters.AddWithValue("plain", server.VirtualKey);
        Assert.Equal(0L, (long)(await keys.ExecuteScalarAsync())!); // the key is stored only as a hash
    }

    [PostgresFact]
    public async Task PostgresUnreachable_CachedKeyKeepsProxying_ReadyzDegraded_EventsReplayedExactlyOnce()
    {
        var connectionString = await databases.CreateAsync("gwdown");
        await using var server = await StartAsync(connectionString);
        var client = new ChatClient("gpt-4o-mini", new ApiKeyCredential(server.VirtualKey), new OpenAIClientOptions { Endpoint = server.OpenAIEndpoint });
        var ledger = server.Services.GetRequiredService<IUsageLedger>();
        var seen = new List<(string Id, int Input, int Output)>();
        async Task CallAsync(string prompt)
        {
            var r = await client.CompleteChatAsync([new UserChatMessage(prompt)]);
            Assert.True(r.GetRawResponse().Headers.TryGetValue("x-tokengateway-request-id", out var id));
            seen.Add((id!, r.Value.Usage.InputTokenCount, r.Value.Usage.OutputTokenCount));
        }

        await CallAsync("before the outage");
        await ledger.FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        await PostgresTestServer.BlockAsync(connectionString);
        try
        {
            using var readiness = await server.Admin.GetAsync("/readyz");
            var body = await readiness.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal(HttpStatusCode.OK, readiness.StatusCode); // the caches still serve: stay in the load balancer
            Assert.Equal("degraded", body.GetProperty("status").GetString());
            Assert.Equal("unavailable", body.GetProperty("dependencies").GetProperty("postgres").GetString());

            for (var i = 0; i < 5; i++)
            {
                await CallAsync($"during the outage {i}");
            }

            await Task.Delay(300);
            Assert.True(ledger.SpoolDepth >= 5, $"spool depth {ledger.SpoolDepth}: the outage's events should wait in the journal");
        }
        finally
        {
            await PostgresTestServer.UnblockAsync(connectionString);
        }

        await ledger.FlushAsync(CancellationToken.None).WaitAsync(Timeout);
        using (var ready = await server.Admin.GetAsync("/readyz"))
        {
            Assert.Equal("ready", (await ready.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        }

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT count(*), count(DISTINCT request_id), sum(input_tokens), sum(output_tokens) FROM usage_events WHERE request_id = ANY(@ids)", connection);
        command.Parameters.AddWithValue("ids", seen.Select(s => s.Id).ToArray());
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal((6L, 6L), (reader.GetInt64(0), reader.GetInt64(1)));
        Assert.Equal(seen.Sum(s => (long)s.Input), reader.GetInt64(2));
        Assert.Equal(seen.Sum(s => (long)s.Output), reader.GetInt64(3));
        var totals = (await server.UsageAsync("teamId=" + server.TeamId)).GetProperty("totals");
        Assert.Equal(6, totals.GetProperty("requests").GetInt64());
        Assert.Equal(seen.Sum(s => (long)s.Output), totals.GetProperty("outputTokens").GetInt64());
    }

    private static Task<GatewayServer> StartAsync(string connectionString) => GatewayServer.StartAsync(new Dictionary<string, string?>
    {
        ["ConnectionStrings:Postgres"] = connectionString,
        ["Storage:LedgerMaxRetryDelay"] = "00:00:00.500",
    });

    [PostgresFact]
    public async Task TwoGatewaysOneDatabase_KeyFromEitherWorksOnBoth_UsageAgreesAndCountsEachRequestOnce()
    {
        var connectionString = await databases.CreateAsync("gwtwo");
        var servers = await Task.WhenAll(StartAsync(connectionString), StartAsync(connectionString)); // migrate together
        await using var first = servers[0];
        await using var second = servers[1];
        Assert.NotEqual(first.DataDirectory, second.DataDirectory); // each keeps its own journal

        var outputs = 0L;
        foreach (var (server, key) in new[] { (first, second.VirtualKey), (second, first.VirtualKey), (first, first.VirtualKey) })
        {
            var client = new ChatClient("gpt-4o-mini", new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = server.OpenAIEndpoint });
            outputs += (await client.CompleteChatAsync([new UserChatMessage("two replicas, one ledger")])).Value.Usage.OutputTokenCount;
        }

        await first.Services.GetRequiredService<IUsageLedger>().FlushAsync(CancellationToken.None).WaitAsync(Timeout);
        await second.Services.GetRequiredService<IUsageLedger>().FlushAsync(CancellationToken.None).WaitAsync(Timeout);

        var viaFirst = (await first.UsageAsync("")).GetProperty("totals");
        var viaSecond = (await second.UsageAsync("")).GetProperty("totals");
        Assert.Equal(3, viaFirst.GetProperty("requests").GetInt64());
        Assert.Equal(outputs, viaFirst.GetProperty("outputTokens").GetInt64());
        Assert.Equal(viaFirst.GetRawText(), viaSecond.GetRawText());
    }
}
