using System.Diagnostics.Metrics;
using System.Net.Http.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Budgets;

/// <summary>
/// Delivers soft-budget alerts: a warning log line and a metric at once, then a JSON POST to the configured webhook
/// from a background queue (the admission path never waits on the network). <see cref="SoftAlertTracker"/> already
/// guarantees one alert per team (or key), metric and period.
/// </summary>
internal sealed partial class WebhookSoftAlertSink : BackgroundService, ISoftAlertSink
{
    public const string HttpClientName = "tokengateway-alerts";

    private readonly Channel<SoftBudgetAlert> _queue;
    private readonly IHttpClientFactory _clients;
    private readonly AlertOptions _options;
    private readonly ILogger<WebhookSoftAlertSink> _logger;
    private readonly Counter<long> _alerts;
    private readonly ResiliencePipeline _delivery;

    public WebhookSoftAlertSink(IHttpClientFactory clients, IOptions<AlertOptions> options, IMeterFactory meters, ILogger<WebhookSoftAlertSink> logger)
    {
        _clients = clients;
        _options = options.Value;
        _logger = logger;
        _queue = Channel.CreateBounded<SoftBudgetAlert>(new BoundedChannelOptions(Math.Max(1, _options.QueueCapacity))
        {
            FullMode = BoundedChannelFullMode.DropWrite,
            SingleReader = true,
        });
        _alerts = meters.Create("TokenGateway").CreateCounter<long>("tokengateway.budget.soft_alerts", "{alert}", "Soft-budget alerts raised");
        _delivery = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = Math.Max(0, _options.MaxAttempts - 1),
                BackoffType = DelayBackoffType.Exponential,
                Delay = TimeSpan.FromMilliseconds(500),
                UseJitter = true,
                ShouldHandle = new PredicateBuilder().Handle<HttpRequestException>().Handle<TaskCanceledException>(),
            })
            .AddTimeout(_options.Timeout)
            .Build();
    }

    public void Publish(SoftBudgetAlert alert)
    {
        ArgumentNullException.ThrowIfNull(alert);
        LogSoftLimitReached(_logger, alert.TeamId, alert.KeyId, alert.Metric, alert.ThresholdPercent, alert.Spent, alert.Limit, alert.Period);
        _alerts.Add(1, new KeyValuePair<string, object?>("team", alert.TeamId), new KeyValuePair<string, object?>("metric", alert.Metric));
        if (_options.WebhookUrl is not null && !_queue.Writer.TryWrite(alert))
        {
            LogDropped(_logger, alert.TeamId);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var alert in _queue.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                await _delivery.ExecuteAsync(static async (state, ct) =>
                {
                    var (sink, alert) = state;
                    using var response = await sink._clients.CreateClient(HttpClientName).PostAsJsonAsync(sink._options.WebhookUrl, alert, ct);
                    response.EnsureSuccessStatusCode();
                }, (this, alert), stoppingToken);
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or Polly.Timeout.TimeoutRejectedException && !stoppingToken.IsCancellationRequested)
            {
                LogDeliveryFailed(_logger, ex, alert.TeamId);
            }
        }
    }

    [LoggerMessage(2020, LogLevel.Warning, "Budget soft limit reached for team {TeamId} (key {KeyId}): {Metric} spend {Spent} of {Limit} crossed {ThresholdPercent}% this {Period}")]
    private static partial void LogSoftLimitReached(ILogger logger, string teamId, string? keyId, string metric, int thresholdPercent, decimal spent, decimal limit, string period);

    [LoggerMessage(2021, LogLevel.Error, "Soft-budget alert for team {TeamId} could not be delivered to the webhook")]
    private static partial void LogDeliveryFailed(ILogger logger, Exception exception, string teamId);

    [LoggerMessage(2022, LogLevel.Error, "Soft-budget alert queue is full; alert for team {TeamId} dropped from webhook delivery (still logged)")]
    private static partial void LogDropped(ILogger logger, string teamId);
}
