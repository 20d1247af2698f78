using System.Text.Json;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Insights;
using TokenGateway.Storage;

namespace TokenGateway.Insights;

/// <summary>
/// Keeps the sampled aggregates across restarts: loads <c>{Storage:DataDirectory}/insights-observations.json</c> at
/// start (adding it to the store), writes it every <see cref="InsightsOptions.PersistInterval"/> and on shutdown
/// (to a temporary file, then renamed). Per replica: each writes its own data directory's file.
/// </summary>
internal sealed partial class InsightsPersistence(
    InsightsStore store, IOptions<InsightsOptions> options, IOptions<StorageOptions> storage, TimeProvider time, ILogger<InsightsPersistence> logger)
    : BackgroundService
{
    public const string FileName = "insights-observations.json";

    private static readonly JsonSerializerOptions _json = new(JsonSerializerDefaults.Web);

    private string Path => System.IO.Path.Combine(System.IO.Path.GetFullPath(storage.Value.DataDirectory), FileName);

    private bool Enabled => options.Value.PersistInterval > TimeSpan.Zero;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (Enabled)
        {
            Load();
        }

        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (Enabled)
        {
            Save();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled)
        {
            return;
        }

        using var timer = new PeriodicTimer(options.Value.PersistInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                Save();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // the final save happens in StopAsync
        }
    }

    /// <summary>Writes the store's aggregates now.</summary>
    internal void Save()
    {
        try
        {
            var path = Path;
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
            var temp = path + ".tmp";
            using (var stream = File.Create(temp))
            {
                JsonSerializer.Serialize(stream, new InsightsFile(1, time.GetUtcNow(), store.Export()), _json);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogSaveFailed(logger, ex);
        }
    }

    private void Load()
    {
        var path = Path;
        if (!File.Exists(path))
        {
            return;
        }

        try
        {
            using var stream = File.OpenRead(path);
            if (JsonSerializer.Deserialize<InsightsFile>(stream, _json) is { Version: 1, Teams: { } teams })
            {
                store.Restore(teams);
                LogLoaded(logger, teams.Count);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or NotSupportedException)
        {
            LogLoadFailed(logger, ex);
        }
    }

    [LoggerMessage(2901, LogLevel.Information, "Insights: restored the sampled observations of {Teams} teams")]
    private static partial void LogLoaded(ILogger logger, int teams);

    [LoggerMessage(2902, LogLevel.Warning, "Insights: the saved observations could not be read; sampling starts over")]
    private static partial void LogLoadFailed(ILogger logger, Exception exception);

    [LoggerMessage(2903, LogLevel.Warning, "Insights: the observations could not be saved")]
    private static partial void LogSaveFailed(ILogger logger, Exception exception);

    private sealed record InsightsFile(int Version, DateTimeOffset SavedAt, IReadOnlyList<TeamObservations> Teams);
}
