<div id="fixture-output">{$said}</div>
