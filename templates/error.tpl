{*
  pvekeep when the plugin could not answer: one message, already in the
  client's language; the billing details above stay WHMCS's.
  Selectors: #pvekeep-error (data-kind: info when the service is not set
  up yet, else danger), #pvekeep-flash.
*}
<div id="pvekeep" class="pvekeep text-left">
  {if $pvekeep_flash}
    <div id="pvekeep-flash" class="alert alert-{$pvekeep_flash.kind|escape} pvekeep-flash" role="alert" data-pvekeep="flash" data-kind="{$pvekeep_flash.kind|escape}">{$pvekeep_flash.text|escape}</div>
  {/if}
  <div id="pvekeep-error" class="alert alert-{$pvekeep_error_kind|default:'danger'|escape} pvekeep-error" data-pvekeep="error" data-kind="{$pvekeep_error_kind|default:'danger'|escape}">{$pvekeep_error|escape}</div>
</div>
