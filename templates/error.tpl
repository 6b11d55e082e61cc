{* pvekeep client area when the plugin could not answer: one message,
   already translated and safe to show. *}
<div class="alert alert-danger pvekeep-error" data-pvekeep="error">{$usefulErrorMessage|escape}</div>
