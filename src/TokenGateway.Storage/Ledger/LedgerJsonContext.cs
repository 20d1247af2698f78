using System.Text.Json.Serialization;
using TokenGateway.Core.Metering;

namespace TokenGateway.Storage.Ledger;

/// <summary>Source-generated (reflection-free) JSON for journal lines and the stored stage list.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(UsageEvent))]
[JsonSerializable(typeof(IReadOnlyList<StageSaving>))]
internal sealed partial class LedgerJsonContext : JsonSerializerContext;
