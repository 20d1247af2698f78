using Microsoft.Extensions.Options;

namespace TokenGateway.Core.Budgets;

/// <summary>Cross-field checks for <see cref="AdmissionOptions"/>.</summary>
internal sealed class AdmissionOptionsValidator : IValidateOptions<AdmissionOptions>
{
    public ValidateOptionsResult Validate(string? name, AdmissionOptions options)
    {
        var failures = new List<string>();
        if (options.MinimumOutputTokens < 1)
        {
            failures.Add($"{AdmissionOptions.SectionName}:MinimumOutputTokens must be at least 1.");
        }

        if (options.MinimumOutputFraction is < 0 or > 1 || double.IsNaN(options.MinimumOutputFraction))
        {
            failures.Add($"{AdmissionOptions.SectionName}:MinimumOutputFraction must be between 0 and 1.");
        }

        if (options.MaxChoices is < 1 or > 128)
        {
            failures.Add($"{AdmissionOptions.SectionName}:MaxChoices must be between 1 and 128.");
        }

        if (options.ReservationTtl <= TimeSpan.Zero)
        {
            failures.Add($"{AdmissionOptions.SectionName}:ReservationTtl must be positive.");
        }

        if (options.ReapInterval <= TimeSpan.Zero)
        {
            failures.Add($"{AdmissionOptions.SectionName}:ReapInterval must be positive.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
