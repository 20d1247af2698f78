using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenGateway.Caching;
using TokenGateway.Core.Caching;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;

namespace TokenGateway.IntegrationTests.Caching;

public sealed class ResponseCacheStoreTests
{
    [Fact]
    public async Task SetAsync_EntryExpiresAfterItsTtlOnTheCacheClock()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var sut = CreateSut(time);
        await sut.SetAsync("k1", Answer("a"), TimeSpan.FromSeconds(60));

        time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal("a", await GetAsync(sut, "k1"));
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Null(await GetAsync(sut, "k1"));
    }

    [Fact]
    public async Task WithRedis_AnEntryStoredByOneGatewayIsServedByAnother()
    {
        var settings = new Dictionary<string, string?> { ["ConnectionStrings:Redis"] = "127.0.0.1:56379" };
        var prefix = "tg-it-cache-" + Guid.NewGuid().ToString("N") + ":";
        using var writer = CreateSut(TimeProvider.System, settings, prefix);
        using var reader = CreateSut(TimeProvider.System, settings, prefix);
        using var otherDeployment = CreateSut(TimeProvider.System, settings, prefix + "other:");
        Assert.True(writer.HasSecondLevel);

        await writer.SetAsync("tg:rc:v1:team:abc", Answer("shared"), TimeSpan.FromSeconds(30));

        Assert.Equal("shared", await GetAsync(reader, "tg:rc:v1:team:abc")); // read from Redis: the reader's memory level is empty
        Assert.Null(await GetAsync(otherDeployment, "tg:rc:v1:team:abc"));
    }

    private static async Task<string?> GetAsync(ResponseCacheStore store, string key)
    {
        try
        {
            var answer = await store.GetOrCreateAsync(key, 0, static (_, _) => throw new AnswerNotStoredException(), TimeSpan.FromSeconds(60));
            return Encoding.UTF8.GetString(answer.Body.Span);
        }
        catch (AnswerNotStoredException)
        {
            return null;
        }
    }

    private static CachedAnswer Answer(string body) => new(LlmDialect.OpenAIChat, "gpt-4o", Encoding.UTF8.GetBytes(body), new TokenUsage(1, 1), DateTimeOffset.UnixEpoch);

    internal static ResponseCacheStore CreateSut(TimeProvider time, IDictionary<string, string?>? settings = null, string? redisPrefix = null) => new(
        Options.Create(new ResponseCacheOptions { RedisInstanceName = redisPrefix ?? "tg-it-cache:" }),
        new ConfigurationBuilder().AddInMemoryCollection(settings ?? new Dictionary<string, string?>()).Build(),
        new ResponseCacheClock(time), NullLoggerFactory.Instance);
}
