using System.ClientModel;
using System.Collections.Concurrent;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Metering;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Metering;

/// <summary>
/// Every usage event reaches the ledger (its journal line) before its reservation is settled in the counter store, so a
/// process killed between the two keeps the provider-billed event (docs/scaling.md, "A replica killed").
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class JournalBeforeSettleTests
{
    [Fact]
    public async Task EachRequest_IsRecordedInTheLedger_BeforeItsReservationSettles()
    {
        var operations = new ConcurrentQueue<string>();
        await using var server = await GatewayServer.StartAsync(services: services =>
        {
            Decorate<IUsageLedger>(services, inner => new RecordingLedger(inner, operations));
            Decorate<IBudgetCounterStore>(services, inner => new RecordingCounterStore(inner, operations));
        });
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{server.TeamId}/policy", new { budget = new { usd = 100m, period = "day", hard = true } }))
            .EnsureSuccessStatusCode();
        var client = new ChatClient("gpt-4o", new ApiKeyCredential(server.VirtualKey), new OpenAIClientOptions { Endpoint = server.OpenAIEndpoint });

        for (var i = 0; i < 3; i++)
        {
            ChatCompletion completion = await client.CompleteChatAsync([new UserChatMessage($"ordering probe {i}")]);
            Assert.True(completion.Usage.OutputTokenCount > 0);
        }

        // The streamed path ends in the same completion.
        await foreach (var _ in client.CompleteChatStreamingAsync([new UserChatMessage("ordering probe stream")]))
        {
        }

        await server.Services.GetRequiredService<IUsageLedger>().FlushAsync(CancellationToken.None);
        var sequence = operations.Where(o => o is "record" or "settle").ToList();
        Assert.Equal(Enumerable.Repeat(new[] { "record", "settle" }, 4).SelectMany(x => x), sequence);
    }

    /// <summary>Replaces the last registration of <typeparamref name="T"/> with a wrapper around what it built.</summary>
    private static void Decorate<T>(IServiceCollection services, Func<T, T> wrap)
        where T : class
    {
        var descriptor = services.Last(d => d.ServiceType == typeof(T));
        services.Remove(descriptor);
        services.AddSingleton(sp =>
        {
            var inner = descriptor.ImplementationInstance as T
                ?? descriptor.ImplementationFactory?.Invoke(sp) as T
                ?? (T)ActivatorUtilities.CreateInstance(sp, descriptor.ImplementationType!);
            return wrap(inner);
        });
    }

    private sealed class RecordingLedger(IUsageLedger inner, ConcurrentQueue<string> operations) : IUsageLedger
    {
        public int QueueDepth => inner.QueueDepth;

        public long SpoolDepth => inner.SpoolDepth;

        public void Record(UsageEvent usageEvent)
        {
            inner.Record(usageEvent);
            operations.Enqueue("record");
        }

        public Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
    }

    private sealed class RecordingCounterStore(IBudgetCounterStore inner, ConcurrentQueue<string> operations) : IBudgetCounterStore
    {
        public ValueTask<ReserveResult> TryReserveAsync(ReserveRequest request, CancellationToken cancellationToken) =>
            inner.TryReserveAsync(request, cancellationToken);

        public ValueTask<SettleResult> SettleAsync(BudgetReservation reservation, long actualUsdMicros, long actualTokens, CancellationToken cancellationToken)
        {
            operations.Enqueue("settle");
            return inner.SettleAsync(reservation, actualUsdMicros, actualTokens, cancellationToken);
        }

        public ValueTask ReleaseAsync(BudgetReservation reservation, CancellationToken cancellationToken)
        {
            operations.Enqueue("release");
            return inner.ReleaseAsync(reservation, cancellationToken);
        }

        public ValueTask<BudgetCounters> GetSnapshotAsync(string teamId, string? keyId, string periodKey, CancellationToken cancellationToken) =>
            inner.GetSnapshotAsync(teamId, keyId, periodKey, cancellationToken);

        public ValueTask SeedSpentAsync(string teamId, string? keyId, BudgetWindow window, long spentUsdMicros, long spentTokens, CancellationToken cancellationToken) =>
            inner.SeedSpentAsync(teamId, keyId, window, spentUsdMicros, spentTokens, cancellationToken);

        public ValueTask<int> ReapExpiredAsync(CancellationToken cancellationToken) => inner.ReapExpiredAsync(cancellationToken);
    }
}
